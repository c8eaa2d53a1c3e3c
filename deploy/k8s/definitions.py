"""Example for teams on Kubernetes: the same code location with every step a Kubernetes Job (dagster-k8s).

Not used by the tests' runs; checked by `dagster definitions validate -f deploy/k8s/definitions.py`
(tests/test_deploy.py). Deploy Dagster with its Helm chart (values in deploy/k8s/values.yaml), with a
user-code image built from this repository (`pip install -e '.[k8s,postgres]'`) whose code location is
this file. Each step's pod mounts the shared warehouse volume (a ReadWriteMany claim: NFS, CephFS, ...)
at the same path as LOWINCOME_WAREHOUSE, reads the LOWINCOME_* settings from a ConfigMap and the
pseudonym key from a Secret. As with Celery, the warehouse volume is the only state the steps share,
and the publishing step takes the warehouse lock on it.
"""

from dagster_k8s import k8s_job_executor

from pipelines.definitions import build_definitions

K8S_EXECUTOR = k8s_job_executor.configured(
    {
        "job_namespace": "lowincome",
        "max_concurrent": 8,  # steps at a time for one run (e.g. 8 feed ingestions)
        "env_config_maps": ["lowincome-settings"],  # LOWINCOME_INBOX, LOWINCOME_WAREHOUSE, LOWINCOME_POLICY, ...
        "env_secrets": ["lowincome-pseudonym-key"],  # LOWINCOME_PSEUDONYM_KEY
        "volumes": [{"name": "warehouse", "persistentVolumeClaim": {"claimName": "lowincome-warehouse"}},
                    {"name": "inbox", "persistentVolumeClaim": {"claimName": "lowincome-inbox", "readOnly": True}}],
        "volume_mounts": [{"name": "warehouse", "mountPath": "/srv/lowincome/warehouse"},
                          {"name": "inbox", "mountPath": "/srv/lowincome/inbox", "readOnly": True}],
        # LOWINCOME_MEMORY_LIMIT in the ConfigMap is per step pod: keep it below the pod's memory limit.
        # LOWINCOME_RULE_STEPS in the ConfigMap: the rules as that many pods over groups of counties (up to
        # max_concurrent at once; the same flags whatever the number).
        "step_k8s_config": {"container_config": {"resources": {
            "requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"cpu": "2", "memory": "8Gi"}}}},
    },
    name="k8s",
)

defs = build_definitions(executor=K8S_EXECUTOR)

-- The latest run's audit rows, so that a reader sums one run and not every run ever kept (issue 12).
-- audit.runs, audit.deliveries and audit.validation_results keep every run for good (auditors need the
-- history); summing them over all runs double counts. "Latest" means the run whose publication this
-- database holds: audit.publication.run_id, or, for a publication made without a run record, the last
-- successful run of the published as-of day.

CREATE VIEW audit.latest_run AS
WITH published AS (
    SELECT as_of, run_id FROM audit.publication
),
fallback AS (
    SELECT r.run_id
    FROM audit.runs AS r, published AS p
    WHERE r.status = 'success' AND r.as_of = p.as_of
    ORDER BY r.started_at DESC
    LIMIT 1
)
SELECT r.*
FROM audit.runs AS r, published AS p
WHERE r.run_id = coalesce(p.run_id, (SELECT run_id FROM fallback));

CREATE VIEW audit.latest_deliveries AS
SELECT d.*
FROM audit.deliveries AS d
JOIN audit.latest_run AS r USING (run_id);

CREATE VIEW audit.latest_validation AS
SELECT v.*
FROM audit.validation_results AS v
JOIN audit.latest_run AS r USING (run_id);

"""Monitoring rules R01–R07 and W01–W05: policy, SQL, flags and their lifecycle."""

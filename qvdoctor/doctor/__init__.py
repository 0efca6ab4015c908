"""The doctor: the check catalogue, its expression language, the rules engine over facts, log
triage, findings and how they are rendered."""

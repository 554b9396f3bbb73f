"""Everything that leaves the archive: cohort exports (DICOMDIR, CSV), FHIR resources."""

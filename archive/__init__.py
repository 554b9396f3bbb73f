"""The Casebank domain: users, folders and rights, cases, DICOM objects, blobs and audit."""

"""The export manager at the hospital edge: receive from the PACS, hold until a selection is whole,
de-identify, and forward through a durable outbox. Nothing identifiable leaves this package."""

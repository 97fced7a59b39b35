"""Rules models: the rules document, its conditions (structured comparisons or CEL
expressions from `assay.engine.expressions`, which input schemas use too), and the
compiled model that sums a record's points into a score."""

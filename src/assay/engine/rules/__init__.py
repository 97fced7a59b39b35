"""Rules models: the rules document, its conditions (structured comparisons or CEL
expressions), and the compiled model that sums a record's points into a score."""

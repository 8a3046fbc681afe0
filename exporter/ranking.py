"""The one order of an answer with a series per entity (a table's rows, a check's names): by
value, ties by the entity's name. The snapshot shapes rows in it; the recorded read checks
that a rule's first rows hold every row the exporter keeps in it."""

from __future__ import annotations

import math
from collections.abc import Iterable

from exporter.prometheus import Sample

# Label values come from the upstream and become list items, table rows and cells in
# documents and label values in /metrics: a longer one is left out, never cut (two cut values
# could become one). How many are kept is EXPORTER_MAX_ENTITIES.
LABEL_LENGTH_LIMIT = 128


def rank(samples: Iterable[Sample], label: str, descending: bool = True) -> list[tuple[str, float]]:
    """(value of `label`, value) of the finite samples, in the order of their values (highest
    first unless not `descending`), ties by name: the only place ties are broken. A label
    value longer than LABEL_LENGTH_LIMIT is left out (the snapshot counts them)."""
    finite = [
        (name, s.value)
        for s in samples
        if math.isfinite(s.value) and len(name := s.labels.get(label, "")) <= LABEL_LENGTH_LIMIT
    ]
    return sorted(finite, key=lambda pair: (-pair[1] if descending else pair[1], pair[0]))

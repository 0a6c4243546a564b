"""The local engine's lanes: its models grouped by what bounds them, each lane with a window of its own.

SmolLM2 decodes `chat_slots` sequences at once (llama.cpp's parallel slots); MiniLM computes one batch of up to
`embed_batch_size` inputs at a time, gathered across concurrent requests; echo and hash answer at once. One window
for all of them had to be the largest (one embedding batch, 32), so up to 32 chat requests were in flight for 4
slots: 28 waited inside the engine, where the request timeout runs (44 requests for 4 slots took minutes each). A
window per lane keeps each model's queue at our gate, where the scheduling policy orders it, while the other
lanes' requests keep flowing; the wiring makes one route of each lane (`wiring/routes.py`).

The windows are fixed, not adaptive: the engine's concurrency is known exactly, so there is nothing to measure,
and a timeout (a long generation) must not shrink the window below the slots and leave them idle.
"""

from __future__ import annotations

from dataclasses import dataclass

from batchgate.engine import registry

CHAT = "chat"
EMBEDDINGS = "embeddings"
BUILTIN = "builtin"
LANES = (CHAT, EMBEDDINGS, BUILTIN)

SLOT_MARGIN = 2  # chat requests beyond the slots, so a slot that frees never waits for the next request
# Embedding batches in flight: one computing, the next gathered behind it so it starts full the moment the first
# ends (with one, the answers of a batch free the window and the next batch starts with what arrived first).
EMBED_BATCHES = 2
# echo and hash answer on the event loop (or a thread, for a large hash request): nothing queues in the engine,
# so the window only bounds what is in flight at once.
BUILTIN_WINDOW = 64


@dataclass(frozen=True, slots=True)
class Lane:
    """One lane: its name (the suffix of its route's name) and the requests worth having in flight."""

    name: str
    window: int

    def serves(self, model: str) -> bool:
        """Whether `model` runs in this lane (any spelling the registry accepts; unknown models go to builtin,
        whose executor refuses them)."""
        return lane_of(model) == self.name


def lane_of(model: str) -> str:
    spec = registry.find(model)
    if spec is registry.SMOLLM:
        return CHAT
    if spec is registry.MINILM:
        return EMBEDDINGS
    return BUILTIN


def lanes(chat_slots: int, embed_batch_size: int) -> tuple[Lane, ...]:
    """The lanes of an engine with these settings, chat first."""
    return (Lane(CHAT, chat_slots + SLOT_MARGIN), Lane(EMBEDDINGS, EMBED_BATCHES * embed_batch_size),
            Lane(BUILTIN, BUILTIN_WINDOW))

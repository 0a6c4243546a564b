"""Projects and their weights: every project's share of each upstream against the others that have work for it
(domain/projects.py). A project is any that has a key or was given a weight; admin keys and the operator's CLI
read and set weights, and a project key sees its own project's."""

from __future__ import annotations

from typing import Protocol

from batchgate import clock
from batchgate.domain.projects import DEFAULT_WEIGHT, Project, weight_problem
from batchgate.errors import InvalidValue, NotFound
from batchgate.protocol.requests import SetProjectWeight
from batchgate.services.auth import Admin, Principal
from batchgate.store.base import KeyStore, ProjectStore


class ProjectKeys(KeyStore, ProjectStore, Protocol):
    """Keys name the projects that exist; project rows hold the weights given."""


class ProjectService:
    def __init__(self, store: ProjectKeys) -> None:
        self._store = store

    async def list(self, by: Admin) -> list[Project]:
        """Every project with a key or a weight, by name."""
        weights = await self._store.project_weights()
        names = {k.project for k in await self._store.list_keys()} | set(weights)
        return [Project(n, weights.get(n, DEFAULT_WEIGHT)) for n in sorted(names)]

    async def get(self, by: Admin, name: str) -> Project:
        for p in await self.list(by):
            if p.name == name:
                return p
        raise NotFound(f"No project found with name '{name}'.", param="project")

    async def own(self, who: Principal) -> Project:
        """The caller's own project, with its weight (what a project key may see)."""
        return Project(who.project, (await self._store.project_weights()).get(who.project, DEFAULT_WEIGHT))

    async def set_weight(self, by: Admin, req: SetProjectWeight) -> Project:
        """Give a project its weight; a project may get one before it has a key. The planners of every worker
        read it at their next tick (within about a second)."""
        problem = weight_problem(req.weight)
        if problem is not None:
            raise InvalidValue(problem, param="weight")
        await self._store.set_project_weight(req.project, req.weight, clock.now())
        return Project(req.project, req.weight)

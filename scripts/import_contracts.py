"""A custom import-linter contract: features reach each other only through their
public modules.

`lint-imports` (in `make lint`) loads it from `[tool.importlinter]` in pyproject.toml.
For every import from one feature package into another, the imported module must be
the other package itself or one of its public modules (by default `service`, `deps`,
`schemas`, `errors` and `models`); everything else in a package (routes, CLI,
repositories, caches, internal helpers) is its own business. docs/architecture.md and
ADR 0014 say why the public set is what it is.
"""

from __future__ import annotations

from typing import Any

from importlinter import Contract, ContractCheck, fields, output


class FeatureInterfacesContract(Contract):
    """Imports between `features` may only target their `public` modules."""

    type_name = "feature_interfaces"

    features = fields.ListField(subfield=fields.StringField())
    public = fields.ListField(subfield=fields.StringField())

    def check(self, graph: Any, verbose: bool) -> ContractCheck:
        features: list[str] = list(self.features)  # type: ignore[call-overload]
        public: set[str] = set(self.public)  # type: ignore[call-overload]
        illegal: list[dict[str, Any]] = []
        for importer in sorted(graph.modules):
            source = _feature_of(importer, features)
            if source is None:
                continue
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                target = _feature_of(imported, features)
                if target is None or target == source:
                    continue
                inside = imported[len(target) :].lstrip(".").split(".")[0]
                if imported == target or inside in public:
                    continue
                details = graph.get_import_details(importer=importer, imported=imported)
                illegal.append(
                    {
                        "importer": importer,
                        "imported": imported,
                        "lines": sorted(d["line_number"] for d in details),
                    }
                )
        return ContractCheck(kept=not illegal, metadata={"illegal": illegal})

    def render_broken_contract(self, check: ContractCheck) -> None:
        output.print_error(
            "Imports into another feature's internals (use its "
            + ", ".join(sorted(self.public))  # type: ignore[call-overload]
            + "):",
            bold=False,
        )
        output.new_line()
        for item in check.metadata["illegal"]:
            lines = ", ".join(str(n) for n in item["lines"])
            output.print_error(f"- {item['importer']} -> {item['imported']} (l.{lines})")
        output.new_line()


def _feature_of(module: str, features: list[str]) -> str | None:
    for feature in features:
        if module == feature or module.startswith(feature + "."):
            return feature
    return None

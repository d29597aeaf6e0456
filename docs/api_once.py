"""Griffe extension for the API reference: a name a package re-exports is documented once, in its own module.

``made.model`` re-exports ``MADE`` from ``made.model.made``; a package page renders the package and its
submodules, so without this the class would appear twice. Re-exports of the top-level ``made`` stay public.
"""

import griffe


class DocumentOnce(griffe.Extension):
    """Mark the aliases of a subpackage's ``__init__`` that point into that subpackage as not public."""

    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        for module in self.subpackages(pkg):
            for member in module.members.values():
                if member.is_alias and member.target_path.startswith(f"{module.path}."):
                    member.public = False

    def subpackages(self, module: griffe.Module) -> list[griffe.Module]:
        found = []
        for child in module.modules.values():
            if child.is_init_module:  # a subpackage
                found += [child, *self.subpackages(child)]
        return found

"""What a core deploys, and how it decides what to run before it touches anything.

Recipes (:mod:`.recipe`) and their versions (:mod:`.versions`), the component store gdk's build
folders feed (:mod:`.store`), artifacts put where the nucleus puts them (:mod:`.artifacts`), recipe
variables (:mod:`.interpolation`), a deployment's ``configurationUpdate`` (:mod:`.configuration_update`),
the deployment document (:mod:`.document`) and the plan made of it (:mod:`.plan`). Nothing here starts a
process: :mod:`fanwatch.core.runtime` applies plans, :mod:`fanwatch.core.lifecycle` runs components.
"""

from fanwatch.core.deployment.document import DeploymentDocument, DeploymentError, DeploymentResult
from fanwatch.core.deployment.plan import Plan, PlannedComponent, plan_deployment
from fanwatch.core.deployment.recipe import Recipe, RecipeError, load_recipe
from fanwatch.core.deployment.store import ComponentStore, StoredComponent
from fanwatch.core.deployment.versions import Requirement, Version

__all__ = [
    "ComponentStore",
    "DeploymentDocument",
    "DeploymentError",
    "DeploymentResult",
    "Plan",
    "PlannedComponent",
    "Recipe",
    "RecipeError",
    "Requirement",
    "StoredComponent",
    "Version",
    "load_recipe",
    "plan_deployment",
]

from django.db.models.signals import m2m_changed, post_delete, post_save

from aigateway.core.config_cache import bump_config_version
from aigateway.routing.models import Deployment, Route

for _model in (Route, Deployment):
    post_save.connect(bump_config_version, sender=_model, dispatch_uid=f"bump-{_model.__name__}")
    post_delete.connect(bump_config_version, sender=_model, dispatch_uid=f"del-{_model.__name__}")
m2m_changed.connect(
    bump_config_version, sender=Route.teams.through, dispatch_uid="bump-team-routes"
)

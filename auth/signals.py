from django.db.models.signals import m2m_changed, post_delete, post_save

from aigateway.core.config_cache import bump_config_version
from auth.models import ApiKey, Organisation, Team

for _model in (Organisation, Team, ApiKey):
    post_save.connect(bump_config_version, sender=_model, dispatch_uid=f"bump-{_model.__name__}")
    post_delete.connect(bump_config_version, sender=_model, dispatch_uid=f"del-{_model.__name__}")
m2m_changed.connect(
    bump_config_version, sender=ApiKey.allowed_routes.through, dispatch_uid="bump-key-routes"
)

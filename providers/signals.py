from django.db.models.signals import post_delete, post_save

from aigateway.core.config_cache import bump_config_version
from providers.models import Credential, ModelPrice, Provider

for _model in (Provider, Credential, ModelPrice):
    post_save.connect(bump_config_version, sender=_model, dispatch_uid=f"bump-{_model.__name__}")
    post_delete.connect(bump_config_version, sender=_model, dispatch_uid=f"del-{_model.__name__}")

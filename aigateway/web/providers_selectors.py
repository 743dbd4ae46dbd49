"""What the Providers page shows: providers with masked credentials, rotation dates, the
routes that use them and their prices. A fixed number of queries whatever the number of
providers, credentials or deployments. Never a secret: credentials are shown by their masked
form (or the environment variable they name) and fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Prefetch, Q
from django.utils import timezone

from aigateway.config_as_code.specs import decimal_text
from aigateway.routing.models import Deployment
from providers.models import Credential, CredentialStatus, ModelPrice, Provider

_STATUS_ORDER = {s: i for i, s in enumerate(("active", "pending", "retiring", "retired"))}


@dataclass(frozen=True)
class CredentialRow:
    credential: Credential
    shown: str  # "sk-…abcd" or "env:NAME"
    overdue: bool
    due_text: str  # "due in 12 days", "overdue by 3 days", "—"

    @property
    def can_activate(self) -> bool:
        return self.credential.status != CredentialStatus.ACTIVE

    @property
    def can_retire(self) -> bool:
        return self.credential.status != CredentialStatus.RETIRED


@dataclass(frozen=True)
class ProviderRow:
    provider: Provider
    credentials: list[CredentialRow]
    deployments: list[Deployment]

    @property
    def active(self) -> CredentialRow | None:
        """The credential new traffic uses (as Provider.active_credential chooses it)."""
        active = [c for c in self.credentials if c.credential.status == CredentialStatus.ACTIVE]
        newest = max(
            active,
            key=lambda c: (
                c.credential.activated_at or c.credential.created_at,
                c.credential.created_at,
            ),
            default=None,
        )
        return newest

    @property
    def overdue(self) -> bool:
        return any(c.overdue for c in self.credentials)

    @property
    def route_names(self) -> list[str]:
        return sorted({d.route.name for d in self.deployments})


@dataclass(frozen=True)
class PriceRow:
    price: ModelPrice
    input_text: str  # "2.50", as gateway.yaml writes it (never "1E+1")
    output_text: str

    @classmethod
    def of(cls, price: ModelPrice) -> PriceRow:
        return cls(
            price, decimal_text(price.input_per_million), decimal_text(price.output_per_million)
        )


@dataclass(frozen=True)
class ProviderDetail:
    row: ProviderRow
    prices: list[PriceRow]  # this provider's own prices
    default_prices: list[PriceRow]  # any-provider prices of models its deployments serve


def _days(delta_seconds: float) -> str:
    days = int(abs(delta_seconds) // 86400)
    return "less than a day" if days == 0 else f"{days} day{'s' if days != 1 else ''}"


def credential_row(credential: Credential, now: datetime) -> CredentialRow:
    due = credential.rotation_due_at
    live = credential.status == CredentialStatus.ACTIVE
    overdue = bool(live and due is not None and due < now)
    if not live or due is None:
        due_text = "—"
    elif overdue:
        due_text = f"overdue by {_days((now - due).total_seconds())}"
    else:
        due_text = f"due in {_days((due - now).total_seconds())}"
    shown = credential.masked or f"env:{credential.env_var}"
    return CredentialRow(credential, shown, overdue, due_text)


def _rows(providers: list[Provider]) -> list[ProviderRow]:
    now = timezone.now()
    rows = []
    for provider in providers:
        credentials = sorted(
            provider.credentials.all(),
            key=lambda c: (_STATUS_ORDER.get(c.status, 9), -c.created_at.timestamp()),
        )
        rows.append(
            ProviderRow(
                provider=provider,
                credentials=[credential_row(c, now) for c in credentials],
                deployments=list(provider.deployments.all()),
            )
        )
    return rows


def _providers(**filters: object) -> list[Provider]:
    deployments = Deployment.objects.select_related("route").order_by("route__name", "priority")
    return list(
        Provider.objects.filter(**filters)
        .order_by("name")
        .prefetch_related("credentials", Prefetch("deployments", queryset=deployments))
    )


def providers_overview() -> list[ProviderRow]:
    """Every provider, by name (three queries)."""
    return _rows(_providers())


def provider_detail(pk: int) -> ProviderDetail:
    """One provider with its credentials, deployments and prices; Provider.DoesNotExist."""
    found = _providers(pk=pk)
    if not found:
        raise Provider.DoesNotExist
    row = _rows(found)[0]
    models = {d.upstream_model for d in row.deployments}
    prices = ModelPrice.objects.filter(
        Q(provider=found[0]) | Q(provider__isnull=True, model__in=models)
    )
    rows = [PriceRow.of(p) for p in sorted(prices, key=lambda p: p.model)]
    own = [r for r in rows if r.price.provider_id is not None]
    default = [r for r in rows if r.price.provider_id is None]
    return ProviderDetail(row=row, prices=own, default_prices=default)

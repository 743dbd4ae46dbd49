"""The Cache page: hit rates and savings per team and route, entries per team namespace,
and purging (audited, platform admins of the team's organisation and superusers only).

A team the user may not see is 404; one they may see but not purge is 403. A user who sees
no team at all gets 403 for the page.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from aigateway.caching.selectors import cache_overview_for_user, cache_teams_visible_to
from aigateway.caching.services import cache_purge_team


@login_required
@require_GET
def cache_page(request: HttpRequest) -> HttpResponse:
    overview = cache_overview_for_user(user=request.user)
    if not overview.teams and not getattr(request.user, "is_superuser", False):
        raise PermissionDenied("You belong to no team whose cache you could see.")
    return render(request, "web/cache.html", {"overview": overview, "nav": "cache"})


@login_required
@require_POST
def cache_purge_view(request: HttpRequest, pk: int) -> HttpResponse:
    visible = {team.pk: team for team, _can in cache_teams_visible_to(request.user)}
    team = visible.get(pk)
    if team is None:
        raise Http404("No such team.")
    route = request.POST.get("route", "")
    if request.POST.get("confirm") != "yes":
        messages.error(request, "Please tick the confirmation box.")
        return redirect("web:cache")
    try:
        removed = cache_purge_team(actor=request.user, team=team, route=route)
    except ValidationError:
        messages.error(request, "That is not a route name.")
        return redirect("web:cache")
    where = f"{team} · {route}" if route.strip() else f"{team} (every route)"
    messages.success(request, f"Purged {removed} cached answer(s) of {where}.")
    return redirect("web:cache")

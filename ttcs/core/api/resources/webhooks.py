"""``/webhooks``: outgoing webhooks for the source information system (see
:mod:`ttcs.core.api.webhooks` for signing and retries)."""

from __future__ import annotations

from pydantic import Field

from ....schemas.api import Page
from ....schemas.base import Identifier
from ...access.policy import Action, Target
from ..routing import Call, endpoint
from ..webhooks import CreatedWebhook, Delivery, Webhook, WebhookSpec
from .common import PageQuery, query_area


class WebhookQuery(PageQuery):
    area: Identifier | None = Field(default=None, description="webhooks of this area or "
                                    "below")


@endpoint("GET", "/webhooks", tag="webhooks", action=Action.WEBHOOK_WRITE,
          summary="List webhooks", query=WebhookQuery, response=Page[Webhook],
          target=query_area)
async def list_webhooks(call: Call) -> Page[Webhook]:
    q: WebhookQuery = call.query
    hooks = await call.api.webhooks.list_webhooks(area=await call.area_filter(q.area),
                                         limit=q.limit + 1, offset=q.offset)
    return call.page(hooks, q.limit, q.offset)


async def _new(call: Call) -> Target:
    return Target.of([call.body.area_code or call.principal.area_code])


@endpoint("POST", "/webhooks", tag="webhooks", action=Action.WEBHOOK_WRITE, status=201,
          summary="Create a webhook (its signing secret is shown once)", body=WebhookSpec,
          response=CreatedWebhook, target=_new)
async def create_webhook(call: Call) -> CreatedWebhook:
    spec: WebhookSpec = call.body
    if spec.area_code is None:  # a webhook never reaches beyond its creator's scope
        spec = spec.model_copy(update={"area_code": call.principal.area_code})
    return await call.api.webhooks.create(spec, call.principal.name, call.actor)


async def _hook(call: Call) -> Target:
    return Target.of([(await call.api.webhooks.get(call.path["id"])).area_code])


@endpoint("GET", "/webhooks/{id}", tag="webhooks", action=Action.WEBHOOK_WRITE,
          summary="One webhook", response=Webhook, target=_hook)
async def get_webhook(call: Call) -> Webhook:
    return await call.api.webhooks.get(call.path["id"])


@endpoint("DELETE", "/webhooks/{id}", tag="webhooks", action=Action.WEBHOOK_WRITE, status=204,
          summary="Stop a webhook", target=_hook)
async def delete_webhook(call: Call) -> None:
    await call.api.webhooks.delete(call.path["id"], call.actor)


@endpoint("GET", "/webhooks/{id}/deliveries", tag="webhooks", action=Action.WEBHOOK_WRITE,
          summary="Recent deliveries of a webhook, newest first", query=PageQuery,
          response=Page[Delivery], target=_hook)
async def webhook_deliveries(call: Call) -> Page[Delivery]:
    q: PageQuery = call.query
    rows = await call.api.webhooks.deliveries(call.path["id"], limit=q.limit + 1,
                                              offset=q.offset)
    return call.page(rows, q.limit, q.offset)

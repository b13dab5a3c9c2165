"""Pushing each platform's drop events to its webhook (API.md, Events): signed by the Standard
Webhooks scheme, delivered at least once, retried with backoff, by every server process at once.
"""

from dropserver.webhooks.dispatcher import WebhookDispatcher, retry_delay
from dropserver.webhooks.messages import Message, message_of

__all__ = ["Message", "WebhookDispatcher", "message_of", "retry_delay"]

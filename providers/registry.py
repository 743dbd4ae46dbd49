"""Importing this module registers every built-in adapter."""

from providers.anthropic_adapter import AnthropicAdapter
from providers.azure_adapter import AzureOpenAIAdapter
from providers.base import register_adapter
from providers.demo import DemoAdapter
from providers.openai_adapter import OpenAIAdapter

register_adapter("openai", OpenAIAdapter)
register_adapter("openai_compatible", OpenAIAdapter)
register_adapter("azure_openai", AzureOpenAIAdapter)
register_adapter("anthropic", AnthropicAdapter)
register_adapter("demo", DemoAdapter)

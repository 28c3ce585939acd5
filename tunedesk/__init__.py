"""tunedesk: fine-tune, evaluate and serve a customer-support chatbot on your own data."""

__version__ = "0.1.0"

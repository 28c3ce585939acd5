"""The chat side of tunedesk: backends that generate answers, and the Chainlit UI in front of them."""

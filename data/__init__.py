"""Data preparation: raw support conversations in, validated chat-format JSONL out."""

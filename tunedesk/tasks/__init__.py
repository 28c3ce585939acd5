"""Inference for the sibling tasks (sentiment, summarization, captioning): load a trained model and predict."""

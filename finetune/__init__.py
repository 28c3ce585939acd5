"""Fine-tuning: Azure OpenAI jobs and deployments; local LoRA."""

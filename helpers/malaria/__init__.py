"""Lab 3 (malaria) support: data readers and patches, model save/load, metrics, experiments, GradCAM plots."""

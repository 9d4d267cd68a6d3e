"""AWS: IAM role mapping, STS role sessions under the approver's identity, Secrets Manager."""

"""The SDK's implementation; the public modules (forgeml.estimator, forgeml.inputs ...) re-export it."""

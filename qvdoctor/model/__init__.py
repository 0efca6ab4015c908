"""The model: locating a checkpoint, reading its configs and safetensors headers, quantization
facts and vision-token arithmetic."""

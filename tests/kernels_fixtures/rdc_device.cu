// Relocatable device code (-rdc=true): a device function called from another translation unit.
__device__ float twice(float v) { return 2.0f * v; }

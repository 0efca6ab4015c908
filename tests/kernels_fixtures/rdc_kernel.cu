// Relocatable device code (-rdc=true): a kernel calling rdc_device.cu's function.
extern __device__ float twice(float v);

__global__ void twice_kernel(float *x) { x[threadIdx.x] = twice(x[threadIdx.x]); }

extern "C" void twice_all(float *x) { twice_kernel<<<1, 32>>>(x); }

// Translation unit 1 of the kernel-reader fixtures: one kernel and a host launcher.
__global__ void scale_kernel(float *x, float factor) { x[threadIdx.x] *= factor; }

extern "C" void scale(float *x, float factor) { scale_kernel<<<1, 32>>>(x, factor); }

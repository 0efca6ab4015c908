// Translation unit 2 of the kernel-reader fixtures, compiled for other archs than scale.cu.
__global__ void add_kernel(float *x, const float *y) { x[threadIdx.x] += y[threadIdx.x]; }

extern "C" void add(float *x, const float *y) { add_kernel<<<1, 32>>>(x, y); }

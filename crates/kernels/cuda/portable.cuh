// What the kernels need from CUDA, named once, so that the same source also compiles as
// plain C++ for the host test (tests/it/cuda_source.rs), which defines TOPO_HOST_EMULATION
// and provides these names itself.
#pragma once

#ifndef TOPO_HOST_EMULATION
#define TOPO_KERNEL extern "C" __global__
#define TOPO_DEVICE __device__ __forceinline__

// This thread's first element and the distance to its next one, in a grid-stride loop.
TOPO_DEVICE unsigned int first_index() { return blockIdx.x * blockDim.x + threadIdx.x; }
TOPO_DEVICE unsigned int index_stride() { return gridDim.x * blockDim.x; }
#endif

TOPO_DEVICE unsigned int min_u(unsigned int a, unsigned int b) { return a < b ? a : b; }

/* SPDX-License-Identifier: MIT */
/* The OpenCL API through a table of function pointers. The backend calls
 * OpenCL by its usual names; this header redirects them to the table, which
 * ct__ocl_api_load() fills from the OpenCL ICD loader (libOpenCL.so.1) loaded
 * at run time (ocl_loader.c), so libctml has no link-time dependency on
 * OpenCL. An OpenCL function the backend calls must be listed in
 * CT__OCL_FUNCTIONS; an unlisted one is an undefined symbol at link time. */
#ifndef CTML_OCL_LOADER_H
#define CTML_OCL_LOADER_H

#ifdef __APPLE__
#include <OpenCL/opencl.h>
#else
#include <CL/cl.h>
#endif
#include "internal.h"

#define CT__OCL_FUNCTIONS(X)                                                                       \
  X(clGetPlatformIDs) X(clGetPlatformInfo) X(clGetDeviceIDs) X(clGetDeviceInfo)                    \
  X(clCreateContext) X(clReleaseContext) X(clCreateCommandQueue) X(clReleaseCommandQueue)          \
  X(clCreateBuffer) X(clCreateSubBuffer) X(clRetainMemObject) X(clReleaseMemObject)                \
  X(clGetMemObjectInfo) X(clCreateProgramWithSource) X(clCreateProgramWithBinary)                  \
  X(clBuildProgram) X(clGetProgramInfo) X(clGetProgramBuildInfo) X(clReleaseProgram)               \
  X(clCreateKernel) X(clGetKernelInfo) X(clGetKernelWorkGroupInfo) X(clSetKernelArg)               \
  X(clReleaseKernel) X(clEnqueueReadBuffer) X(clEnqueueWriteBuffer) X(clEnqueueCopyBuffer)         \
  X(clEnqueueFillBuffer) X(clEnqueueNDRangeKernel) X(clEnqueueMarkerWithWaitList)                  \
  X(clEnqueueBarrierWithWaitList) X(clWaitForEvents) X(clReleaseEvent)                             \
  X(clGetEventProfilingInfo) X(clFlush) X(clFinish)

typedef struct ct__ocl_api_table {
#define CT__OCL_SLOT(f) __typeof__(f) *p_##f;
  CT__OCL_FUNCTIONS(CT__OCL_SLOT)
#undef CT__OCL_SLOT
} ct__ocl_api_table;

extern ct__ocl_api_table ct__ocl_api;

/* Loads the ICD loader once (libOpenCL.so.1, then libOpenCL.so, from the
 * dynamic loader's search path); on failure, and on every later call,
 * CT_ERR_BACKEND_ABSENT with the reason. */
ct_status ct__ocl_api_load(void);

#ifndef CT__OCL_LOADER_IMPL
#define clGetPlatformIDs (*ct__ocl_api.p_clGetPlatformIDs)
#define clGetPlatformInfo (*ct__ocl_api.p_clGetPlatformInfo)
#define clGetDeviceIDs (*ct__ocl_api.p_clGetDeviceIDs)
#define clGetDeviceInfo (*ct__ocl_api.p_clGetDeviceInfo)
#define clCreateContext (*ct__ocl_api.p_clCreateContext)
#define clReleaseContext (*ct__ocl_api.p_clReleaseContext)
#define clCreateCommandQueue (*ct__ocl_api.p_clCreateCommandQueue)
#define clReleaseCommandQueue (*ct__ocl_api.p_clReleaseCommandQueue)
#define clCreateBuffer (*ct__ocl_api.p_clCreateBuffer)
#define clCreateSubBuffer (*ct__ocl_api.p_clCreateSubBuffer)
#define clRetainMemObject (*ct__ocl_api.p_clRetainMemObject)
#define clReleaseMemObject (*ct__ocl_api.p_clReleaseMemObject)
#define clGetMemObjectInfo (*ct__ocl_api.p_clGetMemObjectInfo)
#define clCreateProgramWithSource (*ct__ocl_api.p_clCreateProgramWithSource)
#define clCreateProgramWithBinary (*ct__ocl_api.p_clCreateProgramWithBinary)
#define clBuildProgram (*ct__ocl_api.p_clBuildProgram)
#define clGetProgramInfo (*ct__ocl_api.p_clGetProgramInfo)
#define clGetProgramBuildInfo (*ct__ocl_api.p_clGetProgramBuildInfo)
#define clReleaseProgram (*ct__ocl_api.p_clReleaseProgram)
#define clCreateKernel (*ct__ocl_api.p_clCreateKernel)
#define clGetKernelInfo (*ct__ocl_api.p_clGetKernelInfo)
#define clGetKernelWorkGroupInfo (*ct__ocl_api.p_clGetKernelWorkGroupInfo)
#define clSetKernelArg (*ct__ocl_api.p_clSetKernelArg)
#define clReleaseKernel (*ct__ocl_api.p_clReleaseKernel)
#define clEnqueueReadBuffer (*ct__ocl_api.p_clEnqueueReadBuffer)
#define clEnqueueWriteBuffer (*ct__ocl_api.p_clEnqueueWriteBuffer)
#define clEnqueueCopyBuffer (*ct__ocl_api.p_clEnqueueCopyBuffer)
#define clEnqueueFillBuffer (*ct__ocl_api.p_clEnqueueFillBuffer)
#define clEnqueueNDRangeKernel (*ct__ocl_api.p_clEnqueueNDRangeKernel)
#define clEnqueueMarkerWithWaitList (*ct__ocl_api.p_clEnqueueMarkerWithWaitList)
#define clEnqueueBarrierWithWaitList (*ct__ocl_api.p_clEnqueueBarrierWithWaitList)
#define clWaitForEvents (*ct__ocl_api.p_clWaitForEvents)
#define clReleaseEvent (*ct__ocl_api.p_clReleaseEvent)
#define clGetEventProfilingInfo (*ct__ocl_api.p_clGetEventProfilingInfo)
#define clFlush (*ct__ocl_api.p_clFlush)
#define clFinish (*ct__ocl_api.p_clFinish)
#endif

#endif

# Resolves DDTRAIN_WITH_MPI / DDTRAIN_WITH_CUDA / DDTRAIN_WITH_NCCL from ON/OFF/auto to ON/OFF
# and sets DDTRAIN_TORCH_HAS_CUDA. The CPU build never needs CUDA.

function(ddtrain_resolve_option name found)
  string(TOUPPER "${${name}}" value)
  if(value STREQUAL "AUTO")
    set(${name} ${found} CACHE STRING "" FORCE)
  elseif(value AND NOT found)
    message(FATAL_ERROR "${name}=ON but its dependency was not found")
  elseif(value)
    set(${name} ON CACHE STRING "" FORCE)
  else()
    set(${name} OFF CACHE STRING "" FORCE)
  endif()
endfunction()

# MPI
string(TOUPPER "${DDTRAIN_WITH_MPI}" _mpi)
set(_mpi_found OFF)
if(NOT _mpi STREQUAL "OFF")
  find_package(MPI COMPONENTS CXX)
  if(MPI_CXX_FOUND)
    set(_mpi_found ON)
  endif()
endif()
ddtrain_resolve_option(DDTRAIN_WITH_MPI ${_mpi_found})

# CUDA toolkit (for the NCCL core and CUDA-side sources that need no CUDA LibTorch)
string(TOUPPER "${DDTRAIN_WITH_CUDA}" _cuda)
set(_cuda_found OFF)
if(NOT _cuda STREQUAL "OFF")
  if(NOT CUDAToolkit_ROOT AND EXISTS /usr/local/cuda)
    set(CUDAToolkit_ROOT /usr/local/cuda)
  endif()
  find_package(CUDAToolkit QUIET)
  if(CUDAToolkit_FOUND)
    set(_cuda_found ON)
  endif()
endif()
ddtrain_resolve_option(DDTRAIN_WITH_CUDA ${_cuda_found})

# The torch-free CUDA kernels of the fused Allen–Cahn loss (src/cuda/fused_allen_cahn.cu): nvcc
# against the CUDA toolkit, no LibTorch, no GPU needed to build them. The CPU build
# (DDTRAIN_WITH_CUDA=OFF) never enables the CUDA language.
set(DDTRAIN_CUDA_ARCHITECTURES "80;90" CACHE STRING
    "GPU architectures of the CUDA kernels (CMake CUDA_ARCHITECTURES: 80 = A100, 90 = H100/H200)")
if(DDTRAIN_WITH_CUDA)
  if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX})
    if(CUDAToolkit_NVCC_EXECUTABLE)
      set(CMAKE_CUDA_COMPILER ${CUDAToolkit_NVCC_EXECUTABLE})
    else()
      set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
    endif()
  endif()
  if(NOT CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES ${DDTRAIN_CUDA_ARCHITECTURES})
  endif()
  enable_language(CUDA)
  add_library(ddtrain_cuda_kernels STATIC ${PROJECT_SOURCE_DIR}/src/cuda/fused_allen_cahn.cu)
  target_include_directories(ddtrain_cuda_kernels PUBLIC ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(ddtrain_cuda_kernels PUBLIC CUDA::cudart)
  set_target_properties(ddtrain_cuda_kernels PROPERTIES POSITION_INDEPENDENT_CODE ON
                        CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON
                        CUDA_ARCHITECTURES "${DDTRAIN_CUDA_ARCHITECTURES}")
  target_compile_options(ddtrain_cuda_kernels PRIVATE
                         $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra,-Wno-unused-parameter>)
endif()

# Does the LibTorch we build against have CUDA? (Debian's 1.13 does not; the GPU machine's does.)
set(DDTRAIN_TORCH_HAS_CUDA OFF)
if(TARGET torch_cuda OR TARGET c10_cuda OR C10_CUDA_LIBRARY)
  set(DDTRAIN_TORCH_HAS_CUDA ON)
endif()

# NCCL: needs the CUDA toolkit, libnccl and MPI (the unique id is broadcast over MPI)
string(TOUPPER "${DDTRAIN_WITH_NCCL}" _nccl)
set(_nccl_found OFF)
if(NOT _nccl STREQUAL "OFF" AND DDTRAIN_WITH_CUDA AND DDTRAIN_WITH_MPI)
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include /usr/include)
  find_library(NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/local/cuda/lib64 /usr/lib/x86_64-linux-gnu)
  if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
    set(_nccl_found ON)
  endif()
endif()
ddtrain_resolve_option(DDTRAIN_WITH_NCCL ${_nccl_found})

if(DDTRAIN_WITH_NCCL AND NOT EXISTS ${PROJECT_SOURCE_DIR}/src/comm/nccl_core.cpp)
  set(DDTRAIN_WITH_NCCL OFF CACHE STRING "" FORCE)
endif()
if(DDTRAIN_WITH_NCCL)
  # The torch-free NCCL core: raw device pointers, CUDA runtime, NCCL, MPI bootstrap.
  add_library(ddtrain_nccl_core STATIC ${PROJECT_SOURCE_DIR}/src/comm/nccl_core.cpp)
  target_include_directories(ddtrain_nccl_core PUBLIC ${PROJECT_SOURCE_DIR}/include ${NCCL_INCLUDE_DIR})
  target_link_libraries(ddtrain_nccl_core PUBLIC CUDA::cudart ${NCCL_LIBRARY} MPI::MPI_CXX)
  set_target_properties(ddtrain_nccl_core PROPERTIES POSITION_INDEPENDENT_CODE ON)
  target_compile_options(ddtrain_nccl_core PRIVATE -Wall -Wextra -Wno-unused-parameter)
endif()

message(STATUS "ddtrain: MPI=${DDTRAIN_WITH_MPI} CUDA=${DDTRAIN_WITH_CUDA} NCCL=${DDTRAIN_WITH_NCCL} "
               "LibTorch CUDA=${DDTRAIN_TORCH_HAS_CUDA}")

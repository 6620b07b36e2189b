# The CUDA backend (src/model/cuda), included by CMakeLists.txt when BADAM_CUDA is ON. NOT yet
# run on a GPU. Adds the backend's C files and CUDA kernels to BADAM_LIB_SOURCES and sets
# BADAM_CUDA_LIBS (cudart, cuBLASLt) for the library to link. Targets Hopper (sm_90: H100,
# H200) unless CMAKE_CUDA_ARCHITECTURES says otherwise.
if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS /usr/local/cuda/bin/nvcc)
  set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
endif()
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 90)
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)
file(GLOB BADAM_CUDA_C_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/model/cuda/*.c)
list(REMOVE_ITEM BADAM_CUDA_C_SOURCES ${CMAKE_SOURCE_DIR}/src/model/cuda/cuda_none.c)
file(GLOB BADAM_CUDA_CU_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/model/cuda/*.cu)
list(APPEND BADAM_LIB_SOURCES ${BADAM_CUDA_C_SOURCES} ${BADAM_CUDA_CU_SOURCES})
# No fused multiply-add, so each element of the optimizer and elementwise kernels rounds as the
# CPU's (model/cpu/ops.h); the host compiler's warnings as for C.
set(BADAM_CUDA_FLAGS -fmad=false -Xcompiler=-Wall,-Wextra,-Wno-unused-parameter)
if(BADAM_WERROR)
  list(APPEND BADAM_CUDA_FLAGS -Werror=all-warnings -Xcompiler=-Werror)
endif()
set_source_files_properties(${BADAM_CUDA_CU_SOURCES} PROPERTIES COMPILE_OPTIONS "${BADAM_CUDA_FLAGS}")
set(BADAM_CUDA_LIBS CUDA::cudart CUDA::cublasLt)
message(STATUS "CUDA backend ON (${CMAKE_CUDA_COMPILER}, sm_${CMAKE_CUDA_ARCHITECTURES}): not yet run on a GPU")

#pragma once
/// @file
/// @brief Everything an embedding program needs in one include: errors, flat parameters,
/// communicators (and MpiComm when ddtrain was built with MPI), device names, objectives,
/// partitions, the solver interface, every solver with its options struct, the problem interface
/// and the train() driver.
///
/// The shipped problems, models and data readers (ddtrain/problems/, ddtrain/models/,
/// ddtrain/data/) are not included: include them one by one if you use them.
/// See docs/library-guide.md for a walk-through and examples/embed/ for a complete program.
#include "ddtrain/comm/communicator.hpp"
#include "ddtrain/device.hpp"
#include "ddtrain/error.hpp"
#include "ddtrain/flat_parameters.hpp"
#include "ddtrain/objective.hpp"
#include "ddtrain/partition.hpp"
#include "ddtrain/problem.hpp"
#include "ddtrain/solver.hpp"
#include "ddtrain/solvers/bfgs.hpp"
#include "ddtrain/solvers/data_parallel.hpp"
#include "ddtrain/solvers/plbfgs.hpp"
#include "ddtrain/solvers/sapts.hpp"
#include "ddtrain/solvers/trust_region.hpp"
#include "ddtrain/solvers/warmup.hpp"
#include "ddtrain/summary.hpp"
#include "ddtrain/train.hpp"
#include "ddtrain/version.hpp"

#if DDTRAIN_WITH_MPI
#include "ddtrain/comm/mpi_comm.hpp"
#endif

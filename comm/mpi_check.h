// HOGWILD_MPI_CHECK: the CHECK family of common/check.h for MPI calls (MPI builds only). A failed
// call throws hogwild::Error naming the host, file:line, the call, MPI's error text and this
// process's world rank. Communicators must return errors (MPI_ERRORS_RETURN) for it to see them.
#pragma once

#include <mpi.h>

#include <string>

#include "common/check.h"

namespace hogwild {

// MPI_Error_string of `status` and " (world rank R)".
std::string mpi_status_text(int status);

}  // namespace hogwild

#define HOGWILD_MPI_CHECK(call) HOGWILD_STATUS_CHECK(call, MPI_SUCCESS, ::hogwild::mpi_status_text)

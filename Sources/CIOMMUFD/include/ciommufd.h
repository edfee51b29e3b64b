/* Placeholder: the uAPI header is written by the foundation issue (#2). */
#ifndef TSMKIT_CIOMMUFD_H
#define TSMKIT_CIOMMUFD_H
#include <stdint.h>
#endif

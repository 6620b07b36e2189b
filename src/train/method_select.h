/* The training method a train_config chooses (optim/method.h), and the options it is built
 * from. */
#ifndef BADAM_TRAIN_METHOD_SELECT_H
#define BADAM_TRAIN_METHOD_SELECT_H

#include "badam/train.h"
#include "optim/method.h"

/* c->method_name looked up in c->methods (NULL: the built-in methods), else the built-in
 * c->method; an unknown name is BADAM_E_INVALID. */
badam_status train_method_select(const train_config *c, const train_method_ops **ops,
                                 badam_error *err);
/* The options of c that concern methods (n_examples is the caller's: it needs the data). */
void train_method_options(const train_config *c, method_options *o);

#endif

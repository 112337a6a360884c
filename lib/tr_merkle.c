/* tr_merkle.c — being written */

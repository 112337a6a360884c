/* tr_store.c — being written */

/* tr_tx.c — being written */

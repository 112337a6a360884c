/* tr_ledger.c — being written */

/* tr_query.c — being written */

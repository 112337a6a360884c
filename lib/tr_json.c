/* tr_json.c — being written */

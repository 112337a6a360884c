/* tr_note.c — being written */

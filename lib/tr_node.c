/* tr_node.c — being written */

//! Send and Receive protocol logs in Exchange's CSV shape.

"""``qvdoctor cluster``: check every node of a running Ray cluster before a multi-node vLLM launch.

``collect`` (the only module that imports Ray) runs ``nodefacts.gather_node`` pinned to every
node, then ``netprobe.network_task`` (port probes + a Gloo all-reduce) on all of them at once;
``view`` derives what the ``checks/cluster/`` entries read (``ifnames`` holds NCCL's and Gloo's
interface rules); ``findings`` evaluates them root cause first; ``launchplan`` builds each node's
``ray start`` line and the head's ``vllm serve`` Launch; ``render`` prints it; ``command`` wires it."""

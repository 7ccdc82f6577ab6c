import { MemoryMailStore } from "../../mailstore/memory/mod.ts";
import { runMailStoreContract } from "./contract.ts";

runMailStoreContract("MemoryMailStore", () => Promise.resolve(new MemoryMailStore()));

package xyz.sigilvault.sunstorm.test

import java.math.BigInteger
import java.security.KeyPair
import java.security.KeyPairGenerator
import java.security.Signature
import java.security.interfaces.ECPublicKey
import java.security.spec.ECGenParameterSpec
import java.util.concurrent.CopyOnWriteArrayList
import xyz.sigilvault.sunstorm.ApprovalKey
import xyz.sigilvault.sunstorm.ApprovalKeyException

/**
 * The platform approval key as the Android Keystore / Secure Enclave implementations behave,
 * with a software P-256 key (JCA, `SHA256withECDSA`, DER signatures) and a scriptable
 * person at the biometric prompt: they approve, cancel, or their biometrics change (the key
 * is invalidated and deleted; the next [publicKey] creates a new one).
 *
 * For the appliance's side of the tests it can also behave like a compromised app that
 * bypasses the prompt's meaning: sign with another key ([forgeWith]), sign a statement over
 * another screen ([swapDigest]) or hand back a signature made for another request ([replay]).
 */
class JcaApprovalKey : ApprovalKey {
    /** What the person at the prompt does. */
    enum class User { APPROVE, CANCEL }

    @Volatile var user: User = User.APPROVE

    /** Signs with this key instead (a proof from a key the appliance never enrolled). */
    @Volatile var forgeWith: KeyPair? = null

    /** Replaces the first digest (32 bytes) with the second in the message before signing. */
    @Volatile var swapDigest: Pair<ByteArray, ByteArray>? = null

    /** Returns this signature instead of signing. */
    @Volatile var replay: ByteArray? = null

    /** Every (message, signature) this key made, in order. */
    val signed = CopyOnWriteArrayList<Pair<ByteArray, ByteArray>>()

    /** How often the prompt was shown. */
    @Volatile var prompts = 0
        private set

    private var key: KeyPair? = null
    private var invalidated = false

    /** Biometrics changed: the platform invalidates the key (the next use fails). */
    @Synchronized fun invalidate() {
        invalidated = true
    }

    @Synchronized override fun publicKey(): ByteArray = sec1(current().public as ECPublicKey)

    override fun sign(message: ByteArray): ByteArray {
        val pair = synchronized(this) {
            prompts++
            if (invalidated) {
                // As KeystoreApprovalKey does on KeyPermanentlyInvalidatedException: delete it.
                key = null
                invalidated = false
                throw ApprovalKeyException.KeyInvalidated()
            }
            current()
        }
        if (user == User.CANCEL) throw ApprovalKeyException.Cancelled()
        replay?.let { return it }
        val swap = swapDigest
        val bytes = if (swap == null) message else replaceOnce(message, swap.first, swap.second)
        val sig = Signature.getInstance("SHA256withECDSA").run {
            initSign((forgeWith ?: pair).private)
            update(bytes)
            sign()
        }
        signed += message.copyOf() to sig
        return sig
    }

    private fun current(): KeyPair = key ?: newKey().also { key = it }

    companion object {
        /** A new P-256 key pair. */
        fun newKey(): KeyPair = KeyPairGenerator.getInstance("EC").run {
            initialize(ECGenParameterSpec("secp256r1"))
            generateKeyPair()
        }

        /** SEC1 uncompressed `0x04 || x || y` (what the core expects; not `PublicKey.encoded`, which is X.509). */
        fun sec1(key: ECPublicKey): ByteArray =
            byteArrayOf(4) + fixed32(key.w.affineX) + fixed32(key.w.affineY)

        private fun fixed32(n: BigInteger): ByteArray {
            val b = n.toByteArray().dropWhile { it == 0.toByte() }.toByteArray()
            require(b.size <= 32) { "not a P-256 coordinate" }
            return ByteArray(32 - b.size) + b
        }

        private fun replaceOnce(message: ByteArray, from: ByteArray, to: ByteArray): ByteArray {
            val at = (0..message.size - from.size).firstOrNull { i -> from.indices.all { message[i + it] == from[it] } }
            requireNotNull(at) { "the digest is not in the message" }
            return message.copyOf().also { to.copyInto(it, at) }
        }
    }
}

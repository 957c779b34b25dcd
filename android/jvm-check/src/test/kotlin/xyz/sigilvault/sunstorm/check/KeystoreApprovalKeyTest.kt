package xyz.sigilvault.sunstorm.check

import android.hardware.biometrics.BiometricPrompt
import java.security.KeyFactory
import java.security.KeyPairGenerator
import java.security.interfaces.ECPublicKey
import java.security.spec.ECGenParameterSpec
import java.security.spec.ECPoint
import java.security.spec.ECPublicKeySpec
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertIs
import kotlin.test.assertTrue
import org.junit.jupiter.api.Test
import xyz.sigilvault.sunstorm.ApprovalKeyException
import xyz.sigilvault.sunstorm.android.approval.ApprovalKeySupport

/**
 * The parts of the library's Keystore approval key that run off a device: what each
 * `BiometricPrompt` error tells the core, and the SEC1 encoding of the public key the core
 * enrols (the Keystore and the prompt themselves need a phone).
 */
class KeystoreApprovalKeyTest {
    @Test
    fun `each prompt error reaches the core as the error a screen can explain`() {
        fun mapped(code: Int) = ApprovalKeySupport.promptError(code, "text")
        assertIs<ApprovalKeyException.Cancelled>(mapped(BiometricPrompt.BIOMETRIC_ERROR_USER_CANCELED))
        assertIs<ApprovalKeyException.Cancelled>(mapped(BiometricPrompt.BIOMETRIC_ERROR_CANCELED))
        assertIs<ApprovalKeyException.Cancelled>(mapped(BiometricPrompt.BIOMETRIC_ERROR_TIMEOUT))
        assertIs<ApprovalKeyException.LockedOut>(mapped(BiometricPrompt.BIOMETRIC_ERROR_LOCKOUT))
        assertIs<ApprovalKeyException.LockedOut>(mapped(BiometricPrompt.BIOMETRIC_ERROR_LOCKOUT_PERMANENT))
        assertIs<ApprovalKeyException.NoBiometrics>(mapped(BiometricPrompt.BIOMETRIC_ERROR_NO_BIOMETRICS))
        assertIs<ApprovalKeyException.NoBiometrics>(mapped(BiometricPrompt.BIOMETRIC_ERROR_HW_NOT_PRESENT))
        val other = mapped(BiometricPrompt.BIOMETRIC_ERROR_VENDOR)
        assertIs<ApprovalKeyException.Failed>(other)
        assertTrue(other.reason.contains("text"), other.reason)
    }

    @Test
    fun `the public key is SEC1 uncompressed with coordinates padded to 32 bytes`() {
        val key = KeyPairGenerator.getInstance("EC").run {
            initialize(ECGenParameterSpec("secp256r1"))
            generateKeyPair().public as ECPublicKey
        }
        val sec1 = ApprovalKeySupport.sec1(key)
        assertEquals(65, sec1.size)
        assertEquals(4.toByte(), sec1[0])
        // Round trip through the JCA: the same point.
        val x = java.math.BigInteger(1, sec1.copyOfRange(1, 33))
        val y = java.math.BigInteger(1, sec1.copyOfRange(33, 65))
        val back = KeyFactory.getInstance("EC").generatePublic(ECPublicKeySpec(ECPoint(x, y), key.params)) as ECPublicKey
        assertEquals(key.w, back.w)
        // A coordinate with leading zero bytes keeps its width.
        val small = java.math.BigInteger.valueOf(0x1234)
        val padded = ApprovalKeySupport.sec1(object : ECPublicKey by key {
            override fun getW() = ECPoint(small, key.w.affineY)
        })
        assertContentEquals(ByteArray(30) + byteArrayOf(0x12, 0x34), padded.copyOfRange(1, 33))
    }
}
